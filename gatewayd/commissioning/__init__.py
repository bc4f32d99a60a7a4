"""The on-mesh commissioner: Thread devices join with a PSKd (gatewayctl commissioner, joiner)."""
