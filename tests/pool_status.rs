// pool_status: tests arrive with the subcommand.
