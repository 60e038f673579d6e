/** `berth install-service` / `uninstall-service`: definitions here, the work in service.ts (loaded when one runs). */
import type { Command } from './spec.cjs';

export function addServiceCommands(program: Command): void {
  program
    .command('install-service')
    .description('write the systemd unit of berthd (DIR/etc/systemd/system/berthd.service); systemctl is yours to run')
    .option('--root <dir>', 'the file system root to write under', '/')
    .option('--berthd <path>', 'the berthd to run (default: the one beside this berth, on PATH, or this checkout\'s)')
    .option('--config <file>', 'berthd\'s config file, passed as --config (default: berthd\'s own, /etc/berth/berthd.json)')
    .action(async (o: { root: string; berthd?: string; config?: string }) => {
      const { installService } = await import('./service.js');
      const r = await installService(o);
      process.stdout.write(`${r.replaced ? 'replaced' : 'wrote'} ${r.path}\n  ExecStart=${r.execStart}\n`);
      process.stdout.write('next: systemctl daemon-reload && systemctl enable --now berthd\n');
    });

  program
    .command('uninstall-service')
    .description('remove the systemd unit install-service wrote (and its enablement link); sandboxes and the datapath stay')
    .option('--root <dir>', 'the file system root it was written under', '/')
    .action(async (o: { root: string }) => {
      const { uninstallService } = await import('./service.js');
      const r = await uninstallService(o.root);
      if (!r.removed) {
        process.stdout.write(`no ${r.path}: nothing to remove\n`);
        return;
      }
      process.stdout.write(`removed ${r.path}\n${r.unlinked ? `removed ${r.unlinked}\n` : ''}`);
      process.stdout.write('next: systemctl stop berthd (its sandboxes keep running) && systemctl daemon-reload\n');
    });
}
