"""Deribit JSON-RPC WebSocket v2: ``book.<instrument>.<interval>`` (change_id chained) and
``trades.*`` subscriptions."""
