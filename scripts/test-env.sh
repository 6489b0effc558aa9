# Sourced by make test/bench: where the test PostgreSQL listens.
if [ -d "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -1)" ]; then
  export HOTLINE_TEST_PG_DSN=${HOTLINE_TEST_PG_DSN:-postgres://postgres@127.0.0.1:${HOTLINE_TEST_PG_PORT:-55432}/postgres?sslmode=disable}
fi
