build/ci/bin/halyard serve -m /root/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf -d cpu -t 2 --host 127.0.0.1 --port 48185 --max-running 64 -c 1024 --max-waiting 32
