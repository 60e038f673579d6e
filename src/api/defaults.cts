/** Where berthd's API listens unless told otherwise; apart from the client so that the CLI can name it without loading node:http. */
export const DEFAULT_SOCKET = '/run/berth/berth.sock';
