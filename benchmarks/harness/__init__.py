"""What benchmarks and tests share: process launchers, speech, network namespaces, the impairment bridge."""
