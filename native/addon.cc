// berth's N-API addon: libbpf objects, maps, programs, attachments, ring
// buffers, test runs and feature probes. src/native/addon.ts is its only
// importer; everything blocking returns a Promise.
#include <napi.h>

#include "netlink.h"
#include "wraps.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new berth::AddonData());
  berth::InstallLibbpfLogger();
  berth::BpfObject::Init(env, exports);
  berth::BpfMap::Init(env, exports);
  berth::BpfProgram::Init(env, exports);
  berth::BpfLink::Init(env, exports);
  berth::InitRingBuffer(env, exports);
  berth::InitProbe(env, exports);
  berth::InitPorts(env, exports);
  berth::InitFlock(env, exports);
  berth::InitSpawn(env, exports);
  berth::InitInject(env, exports);
  berth::InitNetlink(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(berth, Init)
