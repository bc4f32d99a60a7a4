"""OpenThread NCP access: links (uart, cascoda, forkpty) → hdlc → spinel codec → async client."""
