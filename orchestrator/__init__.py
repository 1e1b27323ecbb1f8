"""orch: runs the epoll vs io_uring server benchmark with the load tool kept apart."""

__version__ = "0.2.0"
