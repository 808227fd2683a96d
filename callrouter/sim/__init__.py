"""The routing simulator: drives the real call flow over simulated days on a heap of timestamps."""
