package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// ErrOutside is returned (wrapped) for a file name that leads out of its
// directory: an absolute path, a path through "..", or a symlink (on the
// way or at the end) to a place outside; check with errors.Is.
var ErrOutside = errors.New("outside the model directory")

// Within returns dir joined with name when the file it names stays inside
// dir once every symlink is followed. name must be relative and must not
// climb out through "..". A name that does not exist is returned joined,
// with no error (the caller's open reports it); one whose directory chain
// cannot be resolved is refused.
func Within(dir, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty file name", ErrOutside)
	}
	if filepath.IsAbs(name) || filepath.VolumeName(name) != "" || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) {
		return "", fmt.Errorf("%q is an absolute path, %w; name files relative to the model directory", name, ErrOutside)
	}
	clean := filepath.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%q climbs out through \"..\", %w; name files inside the model directory", name, ErrOutside)
	}
	path := filepath.Join(dir, clean)
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		return "", err
	}
	root, _ = filepath.Abs(root)
	real, _ = filepath.Abs(real)
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%q is a symlink to %s, %w; copy the file into the directory (for a Hugging Face cache snapshot, download with --local-dir)", name, real, ErrOutside)
	}
	return path, nil
}
