"""Settings: typed, frozen models of config.yaml, dialplans and rotas, and their loader."""
