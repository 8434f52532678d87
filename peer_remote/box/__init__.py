"""The GPU box: sidecar processes (vLLM, Fish Speech, coturn), model fetching, smoke checks, the entrypoint."""
