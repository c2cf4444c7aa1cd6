package server_test

import (
	"strings"
	"testing"
)

// TestPackedModelServed serves models/g2p-en.onnx: the model's name is the
// file's without .onnx, and the v2 and TGI routes answer as for the
// directory.
func TestPackedModelServed(t *testing.T) {
	g := openGen(t, g2pEn+".onnx")
	ts := start(t, g, nil)
	if status, body := ts.get(t, "/v2/models/g2p-en/ready"); status != 200 {
		t.Fatalf("/v2/models/g2p-en/ready: %d %s", status, body)
	}
	status, _, body := ts.post(t, "/v2/models/g2p-en/infer", map[string]any{
		"inputs": []map[string]any{{"name": "text_input", "shape": []int{1}, "datatype": "BYTES", "data": []string{"hello"}}}})
	if status != 200 || !strings.Contains(string(body), `"HH EH L OW"`) {
		t.Fatalf("infer: %d %s", status, body)
	}
}
