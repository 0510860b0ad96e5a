"""``mira`` subcommands that live in agents."""
