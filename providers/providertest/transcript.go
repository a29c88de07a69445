package providertest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// ReadTranscript loads the testdata file (relative to the vendor's test
// directory) that files maps scenario name to. A .json file is a whole
// reply: it comes back as a Transcript with JSON headers and Model set by
// model. An .sse file comes back as its raw text in sse, for the vendor's
// fake to split into Events and Done (the framing is the vendor's).
func ReadTranscript(files map[string]string, name string, model func(raw []byte) string) (tr Transcript, sse string, err error) {
	file, ok := files[name]
	if !ok {
		return Transcript{}, "", fmt.Errorf("no transcript for %q", name)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		return Transcript{}, "", err
	}
	if strings.HasSuffix(file, ".sse") {
		return Transcript{}, string(raw), nil
	}
	return Transcript{Header: http.Header{"Content-Type": {"application/json"}}, Body: raw, Model: model(raw)}, "", nil
}
