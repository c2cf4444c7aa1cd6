// Package safefile reads the small files of a model directory (manifests,
// configs, tokenizers) so that no file can hang or exhaust the process: it
// refuses what is not a regular file (a named pipe would block the read
// forever, /dev/zero would never end) before opening it, and files over a
// size limit, with errors that name the file and the limit.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is returned (wrapped) for a path that is a directory, a
// device, a named pipe or a socket; check with errors.Is.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned (wrapped) for a file over its size limit; check
// with errors.Is.
var ErrTooLarge = errors.New("file over its size limit")

// ReadFile reads path, following symlinks, when it is a regular file of at
// most limit bytes. limitName names the limit in the error ("models.MaxJSONBytes").
// A missing file gives an error for which errors.Is(err, fs.ErrNotExist) holds.
func ReadFile(path string, limit int64, limitName string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check(path, st, limit, limitName); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have been replaced since the Stat: check what was opened.
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := check(path, st, limit, limitName); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: it grew past %d bytes (%s) while being read", path, ErrTooLarge, limit, limitName)
	}
	return data, nil
}

func check(path string, st fs.FileInfo, limit int64, limitName string) error {
	mode := st.Mode()
	if !mode.IsRegular() {
		what := "a special file"
		switch {
		case mode.IsDir():
			what = "a directory"
		case mode&fs.ModeNamedPipe != 0:
			what = "a named pipe"
		case mode&fs.ModeSocket != 0:
			what = "a socket"
		case mode&fs.ModeDevice != 0:
			what = "a device"
		}
		return fmt.Errorf("%s: %w: it is %s; put the file itself there", path, ErrNotRegular, what)
	}
	if st.Size() > limit {
		return fmt.Errorf("%s: %w: %d bytes, over the limit of %d bytes (%s)", path, ErrTooLarge, st.Size(), limit, limitName)
	}
	return nil
}
