"""Border routing on the LAN side: IPv6 forwarding between wpan0 and the infrastructure link, and
Router Advertisements (sans-I/O codec in ra.py, RFC 4861 timing in advertiser.py)."""
