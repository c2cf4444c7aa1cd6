package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// python returns the Python that has the pinned openai client:
// $S2S_TEST_PYTHON, else the repository's .venv (scripts/setup.sh python
// installs export/requirements.txt there). In CI a missing client fails
// the test; elsewhere it skips, saying how to get it.
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("S2S_TEST_PYTHON")
	if py == "" {
		py = filepath.Join("..", ".venv", "bin", "python")
	}
	out, err := exec.Command(py, "-c", "import openai; print(openai.__version__)").CombinedOutput()
	if err != nil {
		msg := "no Python with the openai client (" + py + ": " + strings.TrimSpace(string(out)) + "); run scripts/setup.sh python or set S2S_TEST_PYTHON"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// TestOpenAIPythonClient runs the official openai client, pinned in
// export/requirements.txt, against /v1 of a server on models/g2p-en.
func TestOpenAIPythonClient(t *testing.T) {
	py := python(t)
	g := openGen(t, g2pEn)
	ts := start(t, g, nil)
	cmd := exec.Command(py, filepath.Join("testdata", "openai_client.py"), ts.url+"/v1", ts.ModelName())
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the openai client: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}
