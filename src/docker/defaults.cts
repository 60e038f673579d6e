/** Where dockerd looks for plugin specs, and berth's defaults there; apart from install.ts so that the CLI's help names them without loading it. */
export const PLUGIN_SPEC_DIR = '/etc/docker/plugins';
export const DEFAULT_PLUGIN_NAME = 'berth';
export const DEFAULT_PLUGIN_SOCKET = '/run/berth/docker-plugin.sock';
