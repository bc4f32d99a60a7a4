"""LwM2M proxy: non-LwM2M devices as virtual LwM2M clients."""
