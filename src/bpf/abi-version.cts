/** BERTH_ABI_VERSION: the header's contract version, raised with each incompatible change. CommonJS so that `berth version` reads it without loading the codecs. */
export const ABI_VERSION = 1;
