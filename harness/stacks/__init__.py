"""The stacks SimCity can attack: local processes, Docker Compose, or a user's own app."""
