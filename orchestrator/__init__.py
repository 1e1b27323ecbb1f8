"""orch: runs the epoll vs io_uring server benchmark with the load tool kept apart."""

__version__ = "0.1.0"
