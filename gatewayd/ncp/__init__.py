"""The NCP feature: owns the Spinel client for ``[ncp] url`` (the radio) and shows it in gatewayctl."""
