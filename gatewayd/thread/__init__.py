"""The Thread side of the border router: network, wpan0 datapath, network data, RAs."""
