package vectorstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"llmproxy/router"
)

var fileStatuses = []string{StatusInProgress, StatusCompleted, StatusFailed, StatusCancelled}

func storeFileObject(f *StoreFile) StoreFileObject {
	return StoreFileObject{ID: f.FileID, Object: "vector_store.file", UsageBytes: f.UsageBytes, CreatedAt: f.CreatedAt.Unix(),
		VectorStoreID: f.StoreID, Status: f.Status, LastError: f.LastError, Attributes: orEmpty(f.Attributes),
		ChunkingStrategy: ChunkingStrategy{Type: "static", Static: &StaticChunking{
			MaxChunkSizeTokens: f.Chunking.MaxTokens, ChunkOverlapTokens: f.Chunking.OverlapTokens}}}
}

func batchObject(b *Batch) BatchObject {
	return BatchObject{ID: b.ID, Object: "vector_store.files_batch", CreatedAt: b.CreatedAt.Unix(),
		VectorStoreID: b.StoreID, Status: b.Status(), FileCounts: b.FileCounts}
}

// attach stores the attachments (and batch) and queues their ingestion.
func (s *Service) attach(ctx context.Context, who router.Identity, storeID string, files []StoreFile, batch *Batch) error {
	for i := range files {
		f := &files[i]
		f.StoreID, f.Team, f.KeyID, f.Status = storeID, who.Team, who.KeyID, StatusInProgress
		if batch != nil {
			f.BatchID = batch.ID
		}
	}
	if err := s.o.Storage.AttachFiles(ctx, who.Team, storeID, files, batch, s.o.Now()); err != nil {
		return storeErr(err, "vector store or file", storeID)
	}
	refs := make([]FileRef, len(files))
	for i, f := range files {
		refs[i] = FileRef{StoreID: storeID, FileID: f.FileID, Generation: f.Generation}
	}
	return s.enqueue(ctx, refs)
}

type attachBody struct {
	FileID           string          `json:"file_id"`
	Attributes       map[string]any  `json:"attributes"`
	ChunkingStrategy json.RawMessage `json:"chunking_strategy"`
}

// storeFile checks one file of an attach or batch call.
func (s *Service) storeFile(b attachBody) (StoreFile, error) {
	if b.FileID == "" {
		return StoreFile{}, invalid("file_id", "Missing required parameter: 'file_id'.")
	}
	if err := checkAttributes(b.Attributes); err != nil {
		return StoreFile{}, err
	}
	ch, err := s.chunking(b.ChunkingStrategy)
	if err != nil {
		return StoreFile{}, err
	}
	return StoreFile{FileID: b.FileID, Attributes: orEmpty(b.Attributes), Chunking: ch}, nil
}

// AttachFile is POST /v1/vector_stores/{id}/files.
func (s *Service) AttachFile(ctx context.Context, who router.Identity, storeID string, body []byte) (*StoreFileObject, error) {
	var b attachBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	f, err := s.storeFile(b)
	if err != nil {
		return nil, err
	}
	files := []StoreFile{f}
	if err := s.attach(ctx, who, storeID, files, nil); err != nil {
		return nil, err
	}
	o := storeFileObject(&files[0])
	return &o, nil
}

// ListStoreFiles is GET /v1/vector_stores/{id}/files (filter: a status).
func (s *Service) ListStoreFiles(ctx context.Context, team, storeID, status string, q ListQuery) (*List[StoreFileObject], error) {
	return s.listStoreFiles(ctx, team, storeID, "", status, q)
}

func (s *Service) listStoreFiles(ctx context.Context, team, storeID, batchID, status string, q ListQuery) (*List[StoreFileObject], error) {
	if status != "" && !slices.Contains(fileStatuses, status) {
		return nil, invalid("filter", "Invalid 'filter': expected in_progress, completed, failed or cancelled.")
	}
	p, err := q.page(defaultLimit, maxLimit)
	if err != nil {
		return nil, err
	}
	want := p.Limit
	p.Limit++
	fs, err := s.o.Storage.ListStoreFiles(ctx, team, storeID, StoreFileQuery{Page: p, Status: status, BatchID: batchID})
	if err != nil {
		if batchID != "" {
			return nil, storeErr(err, "vector store file batch", batchID)
		}
		return nil, storeErr(err, "vector store", storeID)
	}
	return listOf(fs, want, storeFileObject, func(o *StoreFileObject) string { return o.ID }), nil
}

// GetStoreFile is GET /v1/vector_stores/{id}/files/{file_id}.
func (s *Service) GetStoreFile(ctx context.Context, team, storeID, fileID string) (*StoreFileObject, error) {
	f, err := s.o.Storage.GetStoreFile(ctx, team, storeID, fileID)
	if err != nil {
		return nil, storeErr(err, "vector store file", fileID)
	}
	o := storeFileObject(f)
	return &o, nil
}

// UpdateStoreFile is POST /v1/vector_stores/{id}/files/{file_id}: it
// replaces the attributes.
func (s *Service) UpdateStoreFile(ctx context.Context, team, storeID, fileID string, body []byte) (*StoreFileObject, error) {
	var b struct {
		Attributes *map[string]any `json:"attributes"`
	}
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if b.Attributes == nil {
		return nil, invalid("attributes", "Missing required parameter: 'attributes'.")
	}
	if err := checkAttributes(*b.Attributes); err != nil {
		return nil, err
	}
	f, err := s.o.Storage.UpdateAttributes(ctx, team, storeID, fileID, *b.Attributes)
	if err != nil {
		return nil, storeErr(err, "vector store file", fileID)
	}
	o := storeFileObject(f)
	return &o, nil
}

// DeleteStoreFile is DELETE /v1/vector_stores/{id}/files/{file_id}: the
// file leaves the store with its chunks; the file itself stays.
func (s *Service) DeleteStoreFile(ctx context.Context, team, storeID, fileID string) (*Deleted, error) {
	if err := s.o.Storage.DetachFile(ctx, team, storeID, fileID, s.o.Now()); err != nil {
		return nil, storeErr(err, "vector store file", fileID)
	}
	return &Deleted{ID: fileID, Object: "vector_store.file.deleted", Deleted: true}, nil
}

// ContentPart is one part of a vector store file's parsed content.
type ContentPart struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

// ContentPage is OpenAI's vector_store.file_content.page.
type ContentPage struct {
	Object   string        `json:"object"`
	Data     []ContentPart `json:"data"`
	HasMore  bool          `json:"has_more"`
	NextPage *string       `json:"next_page"`
}

// StoreFileContent is GET /v1/vector_stores/{id}/files/{file_id}/content:
// the file's chunks, in order.
func (s *Service) StoreFileContent(ctx context.Context, team, storeID, fileID string) (*ContentPage, error) {
	cs, err := s.o.Storage.StoreChunks(ctx, team, storeID, fileID)
	if err != nil {
		return nil, storeErr(err, "vector store file", fileID)
	}
	out := &ContentPage{Object: "vector_store.file_content.page", Data: make([]ContentPart, len(cs))}
	for i, c := range cs {
		out.Data[i] = ContentPart{Type: "text", Text: c.Content}
	}
	return out, nil
}

// CreateBatch is POST /v1/vector_stores/{id}/file_batches: file_ids (with
// shared attributes and chunking_strategy) or files (each with its own).
func (s *Service) CreateBatch(ctx context.Context, who router.Identity, storeID string, body []byte) (*BatchObject, error) {
	var b struct {
		FileIDs          []string        `json:"file_ids"`
		Files            []attachBody    `json:"files"`
		Attributes       map[string]any  `json:"attributes"`
		ChunkingStrategy json.RawMessage `json:"chunking_strategy"`
	}
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	switch {
	case len(b.FileIDs) > 0 && len(b.Files) > 0:
		return nil, invalid("files", "'file_ids' and 'files' are mutually exclusive.")
	case len(b.FileIDs) == 0 && len(b.Files) == 0:
		return nil, invalid("file_ids", "Missing required parameter: 'file_ids' (or 'files').")
	case len(b.FileIDs)+len(b.Files) > maxAttachFiles:
		return nil, invalid("file_ids", fmt.Sprintf("Invalid 'file_ids': at most %d files.", maxAttachFiles))
	}
	items := b.Files
	for _, id := range dedupe(b.FileIDs) {
		items = append(items, attachBody{FileID: id, Attributes: b.Attributes, ChunkingStrategy: b.ChunkingStrategy})
	}
	files := make([]StoreFile, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.FileID] {
			continue
		}
		seen[it.FileID] = true
		f, err := s.storeFile(it)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	batch := &Batch{ID: newID("vsfb_"), StoreID: storeID, Team: who.Team, CreatedAt: s.o.Now()}
	if err := s.attach(ctx, who, storeID, files, batch); err != nil {
		return nil, err
	}
	return s.GetBatch(ctx, who.Team, storeID, batch.ID)
}

// GetBatch is GET /v1/vector_stores/{id}/file_batches/{batch_id}.
func (s *Service) GetBatch(ctx context.Context, team, storeID, batchID string) (*BatchObject, error) {
	b, err := s.o.Storage.GetBatch(ctx, team, storeID, batchID)
	if err != nil {
		return nil, storeErr(err, "vector store file batch", batchID)
	}
	o := batchObject(b)
	return &o, nil
}

// CancelBatch is POST /v1/vector_stores/{id}/file_batches/{batch_id}/cancel:
// files still in progress end cancelled (a job already running drops its
// result).
func (s *Service) CancelBatch(ctx context.Context, team, storeID, batchID string) (*BatchObject, error) {
	b, err := s.o.Storage.CancelBatch(ctx, team, storeID, batchID, s.o.Now())
	if err != nil {
		return nil, storeErr(err, "vector store file batch", batchID)
	}
	o := batchObject(b)
	return &o, nil
}

// ListBatchFiles is GET /v1/vector_stores/{id}/file_batches/{batch_id}/files.
func (s *Service) ListBatchFiles(ctx context.Context, team, storeID, batchID, status string, q ListQuery) (*List[StoreFileObject], error) {
	return s.listStoreFiles(ctx, team, storeID, batchID, status, q)
}
