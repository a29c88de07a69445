package sqlite

import (
	"testing"

	"llmproxy/vectorstore/vectorstoretest"
)

func TestVectorStores(t *testing.T) { vectorstoretest.Run(t, openTemp(t)) }
