"""Chronicle application layer."""
