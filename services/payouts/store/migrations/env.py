from shared import migration_env

migration_env.run()
