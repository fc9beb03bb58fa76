// Helpers for tests only (they will move to @mycelium/testkit). Production code never calls them.
export { startPostgresServer, type PostgresServer, type PostgresServerOptions } from "./postgres-server";
