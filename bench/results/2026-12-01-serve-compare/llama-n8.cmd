/work/llama-build/bin/llama-server -m /root/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 -tb 2 --host 127.0.0.1 --port 33449 --parallel 8 -c 8192
