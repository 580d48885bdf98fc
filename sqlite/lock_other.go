//go:build !unix

package sqlite

// dbLock does nothing here: natter takes the data directory's lock on Unix only, so on other
// systems nothing stops two servers from opening one database (don't).
type dbLock struct{}

func lockDB(dbPath string) (*dbLock, error) { return &dbLock{}, nil }

func (l *dbLock) release() {}
