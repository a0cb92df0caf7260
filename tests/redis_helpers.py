"""What tests against a real Redis count: the commands a call sends."""


def commands_sent(stores, call) -> list[str]:
    """The Redis commands ``call`` sends through the clients of ``stores`` (the project's
    RedisCache instances, one or several)."""
    stores = stores if isinstance(stores, list | tuple) else [stores]
    clients = [store._cache.get_client(write=True) for store in stores]
    commands = []
    for client in clients:
        def counted(*args, _send=client.execute_command, **kwargs):
            commands.append(args[0])
            return _send(*args, **kwargs)

        client.execute_command = counted
    try:
        call()
    finally:
        for client in clients:
            del client.execute_command
    return commands
