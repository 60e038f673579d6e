/**
 * One pino root logger for the process; subsystems take a child with their
 * name. libbpf's own messages arrive through the addon as the "libbpf" child.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

// stderr, so that a command's own output on stdout (tables, JSON) stays clean.
let root: Logger = pino(
  {
    level: process.env.BERTH_LOG_LEVEL ?? 'warn',
    base: { pid: process.pid },
    redact: { paths: ['*.password', '*.token', '*.key', '*.cert'], censor: '[redacted]' },
  },
  pino.destination(2),
);

export function rootLogger(): Logger {
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function setLogLevel(level: LevelWithSilent): void {
  root.level = level;
}

export function subsystemLogger(name: string): Logger {
  return root.child({ subsystem: name });
}
