package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Jobs is a river client on the database's pool.
type Jobs struct {
	*river.Client[pgx.Tx]
}

// Jobs returns a river client on d's pool with cfg, not started, after
// applying river's migrations to the current schema. They cannot share
// one transaction (a later one uses an enum value an earlier one adds),
// so a session advisory lock, held on a connection of its own while they
// run, makes replicas that start together take turns.
func (d *DB) Jobs(ctx context.Context, cfg *river.Config) (*Jobs, error) {
	drv := riverpgxv5.New(d.pool)
	mig, err := rivermigrate.New(drv, nil)
	if err != nil {
		return nil, fmt.Errorf("postgres: river migrations: %w", err)
	}
	if err := d.migrateRiver(ctx, mig); err != nil {
		return nil, fmt.Errorf("postgres: river migrations: %w", err)
	}
	c, err := river.NewClient(drv, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: river client: %w", err)
	}
	return &Jobs{Client: c}, nil
}

func (d *DB) migrateRiver(ctx context.Context, mig *rivermigrate.Migrator[pgx.Tx]) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	const key = `hashtext(current_schema() || '.river_migrate')`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`)
	_, err = mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}
