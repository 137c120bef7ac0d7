// PyTorch checkpoints (torch.save's zip format) as a Model; the safe pickle reader they need.
export { openPytorch, sniffPytorch, findStateDict } from './read';
export { unpickle, PickleRefused, type PyCallable, type UnpickleHooks } from './pickle';
export { TensorRef, resolveTorchGlobal, torchPersistentLoad, type StorageRef } from './torchGlobals';
