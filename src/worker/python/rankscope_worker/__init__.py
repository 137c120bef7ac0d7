"""Rankscope fine-tuning worker: runs an ONNX graph (handed over as graph JSON + safetensors)
as a torch.nn.Module and fine-tunes it. Needs only torch and numpy."""

__version__ = "0.1.0"
# Bumped whenever a message shape in src/worker/protocol.ts changes; the client checks it on `hello`.
PROTOCOL_VERSION = 2
