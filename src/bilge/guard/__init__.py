"""guard: `bilge watch`, the long-running guard (`loop`), with what it needs: the
engine's events and images' last use (`lastuse`, `imageuse`), Prometheus
`metrics`, webhook `alerts` and its one-line-per-event `log`."""
