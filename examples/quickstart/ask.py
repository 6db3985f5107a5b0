"""Ask the quickstart's embedding service for a vector, with the official openai client.

    python examples/quickstart/ask.py [TEXT] [--base-url URL]

The service speaks OpenAI's API on the portal 127.0.0.1:8001 (examples/quickstart/ozwald.yml);
vLLM serves the model under the name given by --served-model-name ("embed"). No API key is
set on the server, but the client insists on one, so any string does.
"""

from __future__ import annotations

import argparse
import time

from openai import OpenAI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default="Ozwald runs AI services on your own hosts.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8001/v1")
    parser.add_argument("--model", default="embed")
    args = parser.parse_args()

    client = OpenAI(base_url=args.base_url, api_key="not-needed", timeout=60, max_retries=0)
    started = time.perf_counter()
    response = client.embeddings.create(model=args.model, input=args.text)
    took_ms = (time.perf_counter() - started) * 1000
    vector = response.data[0].embedding
    print(f"model {response.model}: a vector of {len(vector)} numbers for {args.text!r}")
    print(f"first values {[round(value, 4) for value in vector[:4]]}, answered in {took_ms:.0f} ms")


if __name__ == "__main__":
    main()
