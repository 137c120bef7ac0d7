// safetensors in and out: the container (worker hand-over, factors files) and the lazy Model reader.
export { parseHeader, readSafetensors, safetensorsCode, writeSafetensors, type Header, type HeaderEntry, type SafeTensor, type SafeTensorSource } from './container';
export { openSafetensors, sniffSafetensors } from './read';
