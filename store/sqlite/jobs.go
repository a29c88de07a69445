package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// JobsFileName is the river job database Jobs opens next to FileName:
// riversqlite wants a single connection, which the ledger's database
// cannot give it (DEPS.md).
const JobsFileName = "river.db"

// Jobs is a river client on its own SQLite file.
type Jobs struct {
	*river.Client[*sql.Tx]
	db *sql.DB
}

// OpenJobs opens (creating) dir/river.db with one connection, applies
// river's migrations and returns a client with cfg, not started.
func OpenJobs(ctx context.Context, dir string, cfg *river.Config) (*Jobs, error) {
	path := filepath.Join(dir, JobsFileName)
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	drv := riversqlite.New(db)
	mig, err := rivermigrate.New(drv, nil)
	if err == nil {
		_, err = mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: river migrations: %w", err)
	}
	c, err := river.NewClient(drv, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: river client: %w", err)
	}
	return &Jobs{Client: c, db: db}, nil
}

// Close closes the job database; stop the client first.
func (j *Jobs) Close() error { return j.db.Close() }
