"""Model backends the specialists run on: the bundled ONNX sentence encoder and its
micro-batcher, llama.cpp for local generation, and OpenAI-compatible servers (vLLM)."""
