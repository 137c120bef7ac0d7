// The worker's tensor hand-over files are safetensors; the container lives with the other
// formats (src/core/formats/safetensors), this is the worker's name for it.
export { readSafetensors, safetensorsCode, writeSafetensors, type SafeTensor } from '../core/formats/safetensors';
