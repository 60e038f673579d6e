#!/usr/bin/env python3
"""A long-lived TCP conversation, for tests that restart berthd under it.

  echo.py serve PORT SECONDS          echo every line back, for SECONDS
  echo.py talk HOST PORT SECONDS MS   one connection: a line every MS ms for SECONDS,
                                      each echo awaited; prints one JSON line
"""
import json, socket, sys, time

def serve(port, seconds):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('::', port))
    srv.listen(4)
    srv.settimeout(seconds)
    conn, _ = srv.accept()
    conn.settimeout(seconds)
    end = time.time() + seconds
    while time.time() < end:
        data = conn.recv(4096)
        if not data:
            break
        conn.sendall(data)

def talk(host, port, seconds, ms):
    out = {"sent": 0, "echoed": 0, "maxWaitMs": 0, "error": None}
    try:
        s = socket.create_connection((host, port), timeout=5)
        s.settimeout(5)
        end = time.time() + seconds
        while time.time() < end:
            line = ("msg %d\n" % out["sent"]).encode()
            t0 = time.time()
            s.sendall(line)
            out["sent"] += 1
            got = b""
            while len(got) < len(line):
                chunk = s.recv(len(line) - len(got))
                if not chunk:
                    raise ConnectionError("closed by the peer")
                got += chunk
            if got == line:
                out["echoed"] += 1
            out["maxWaitMs"] = max(out["maxWaitMs"], round((time.time() - t0) * 1000, 1))
            time.sleep(ms / 1000)
        s.close()
    except Exception as e:  # reported, not raised: the test asserts on it
        out["error"] = repr(e)
    print(json.dumps(out))

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), float(sys.argv[3]))
    else:
        talk(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
