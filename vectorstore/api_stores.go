package vectorstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"llmproxy/router"
)

const (
	// maxAttachFiles is how many file ids one create or batch call takes
	// (OpenAI's limit is 2000 per batch).
	maxAttachFiles = 2000
	maxNameLen     = 256
	maxDescLen     = 512
)

func (s *Service) storeObject(st *Store) StoreObject {
	o := StoreObject{ID: st.ID, Object: "vector_store", CreatedAt: st.CreatedAt.Unix(), Name: st.Name,
		UsageBytes: st.UsageBytes, FileCounts: st.FileCounts, Status: st.Status(s.o.Now()),
		LastActiveAt: st.LastActiveAt.Unix(), Metadata: orEmpty(st.Metadata), EmbeddingModel: st.EmbeddingModel}
	if st.Description != "" {
		d := st.Description
		o.Description = &d
	}
	if exp, ok := st.ExpiresAt(); ok {
		o.ExpiresAfter = &ExpiresAfter{Anchor: "last_active_at", Days: st.ExpiresAfterDays}
		e := exp.Unix()
		o.ExpiresAt = &e
	}
	return o
}

type createStoreBody struct {
	Name             *string           `json:"name"`
	Description      string            `json:"description"`
	FileIDs          []string          `json:"file_ids"`
	Metadata         map[string]string `json:"metadata"`
	ChunkingStrategy json.RawMessage   `json:"chunking_strategy"`
	ExpiresAfter     json.RawMessage   `json:"expires_after"`
	EmbeddingModel   string            `json:"embedding_model"`
}

// CreateStore is POST /v1/vector_stores, with the extension
// embedding_model (default vector_stores.embedding_model). Files named in
// file_ids are attached and queued for ingestion.
func (s *Service) CreateStore(ctx context.Context, who router.Identity, body []byte) (*StoreObject, error) {
	var b createStoreBody
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decode(body, &b); err != nil {
			return nil, err
		}
	}
	if err := checkMetadata(b.Metadata); err != nil {
		return nil, err
	}
	st := &Store{ID: newID("vs_"), Team: who.Team, Description: b.Description, EmbeddingModel: b.EmbeddingModel, Metadata: b.Metadata}
	if b.Name != nil {
		st.Name = *b.Name
	}
	if len(st.Name) > maxNameLen || len(st.Description) > maxDescLen {
		return nil, invalid("name", fmt.Sprintf("Invalid 'name' or 'description': at most %d and %d characters.", maxNameLen, maxDescLen))
	}
	if st.EmbeddingModel == "" {
		st.EmbeddingModel = s.o.EmbeddingModel
	}
	if err := s.o.CheckModel(who.Team, st.EmbeddingModel); err != nil {
		return nil, err
	}
	days, err := expiresAfter(b.ExpiresAfter)
	if err != nil {
		return nil, err
	}
	st.ExpiresAfterDays = days
	ch, err := s.chunking(b.ChunkingStrategy)
	if err != nil {
		return nil, err
	}
	if len(b.FileIDs) > maxAttachFiles {
		return nil, invalid("file_ids", fmt.Sprintf("Invalid 'file_ids': at most %d files.", maxAttachFiles))
	}
	now := s.o.Now()
	st.CreatedAt, st.LastActiveAt = now, now
	if err := s.o.Storage.CreateStore(ctx, st); err != nil {
		return nil, fmt.Errorf("vectorstore: create store: %w", err)
	}
	if len(b.FileIDs) > 0 {
		files := make([]StoreFile, 0, len(b.FileIDs))
		for _, id := range dedupe(b.FileIDs) {
			files = append(files, StoreFile{FileID: id, Attributes: map[string]any{}, Chunking: ch})
		}
		if err := s.attach(ctx, who, st.ID, files, nil); err != nil {
			// The store exists; a file that is not the team's makes
			// the whole create fail, as OpenAI's does.
			_ = s.o.Storage.DeleteStore(context.WithoutCancel(ctx), who.Team, st.ID)
			return nil, err
		}
		if st, err = s.o.Storage.GetStore(ctx, who.Team, st.ID); err != nil {
			return nil, err
		}
	}
	o := s.storeObject(st)
	return &o, nil
}

// expiresAfter decodes expires_after: {"anchor": "last_active_at", "days":
// 1..365}; null or absent is no expiry (0).
func expiresAfter(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return 0, nil
	}
	var e ExpiresAfter
	if err := json.Unmarshal(raw, &e); err != nil || e.Anchor != "last_active_at" || e.Days < 1 || e.Days > 365 {
		return 0, invalid("expires_after", "Invalid 'expires_after': want {\"anchor\": \"last_active_at\", \"days\": 1 to 365}.")
	}
	return e.Days, nil
}

// chunking decodes a chunking_strategy: absent or auto is the configured
// default, static is checked against OpenAI's bounds.
func (s *Service) chunking(raw json.RawMessage) (Chunking, error) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return s.o.Chunking, nil
	}
	var cs ChunkingStrategy
	if err := json.Unmarshal(raw, &cs); err != nil {
		return Chunking{}, invalid("chunking_strategy", "Invalid 'chunking_strategy': "+router.Clip(err.Error()))
	}
	switch cs.Type {
	case "auto":
		return s.o.Chunking, nil
	case "static":
		if cs.Static == nil {
			return Chunking{}, invalid("chunking_strategy", "Invalid 'chunking_strategy': a static strategy needs 'static'.")
		}
		c := Chunking{MaxTokens: cs.Static.MaxChunkSizeTokens, OverlapTokens: cs.Static.ChunkOverlapTokens}
		if err := s.o.CheckChunking(c); err != nil {
			return Chunking{}, invalid("chunking_strategy", "Invalid 'chunking_strategy': "+router.Clip(err.Error()))
		}
		return c, nil
	}
	return Chunking{}, invalid("chunking_strategy", "Invalid 'chunking_strategy': type is 'auto' or 'static'.")
}

// ListStores is GET /v1/vector_stores.
func (s *Service) ListStores(ctx context.Context, team string, q ListQuery) (*List[StoreObject], error) {
	p, err := q.page(defaultLimit, maxLimit)
	if err != nil {
		return nil, err
	}
	want := p.Limit
	p.Limit++
	sts, err := s.o.Storage.ListStores(ctx, team, p)
	if err != nil {
		return nil, err
	}
	return listOf(sts, want, s.storeObject, func(o *StoreObject) string { return o.ID }), nil
}

// GetStore is GET /v1/vector_stores/{id}.
func (s *Service) GetStore(ctx context.Context, team, id string) (*StoreObject, error) {
	st, err := s.o.Storage.GetStore(ctx, team, id)
	if err != nil {
		return nil, storeErr(err, "vector store", id)
	}
	o := s.storeObject(st)
	return &o, nil
}

// UpdateStore is POST /v1/vector_stores/{id}: name, metadata and
// expires_after.
func (s *Service) UpdateStore(ctx context.Context, team, id string, body []byte) (*StoreObject, error) {
	var b struct {
		Name         *string            `json:"name"`
		Metadata     *map[string]string `json:"metadata"`
		ExpiresAfter json.RawMessage    `json:"expires_after"`
	}
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	u := StoreUpdate{Name: b.Name, Metadata: b.Metadata, At: s.o.Now()}
	if b.Name != nil && len(*b.Name) > maxNameLen {
		return nil, invalid("name", fmt.Sprintf("Invalid 'name': at most %d characters.", maxNameLen))
	}
	if b.Metadata != nil {
		if err := checkMetadata(*b.Metadata); err != nil {
			return nil, err
		}
	}
	if b.ExpiresAfter != nil {
		days, err := expiresAfter(b.ExpiresAfter)
		if err != nil {
			return nil, err
		}
		u.ExpiresAfterDays = &days
	}
	st, err := s.o.Storage.UpdateStore(ctx, team, id, u)
	if err != nil {
		return nil, storeErr(err, "vector store", id)
	}
	o := s.storeObject(st)
	return &o, nil
}

// DeleteStore is DELETE /v1/vector_stores/{id}: the store, its chunks and
// attachments; the files stay.
func (s *Service) DeleteStore(ctx context.Context, team, id string) (*Deleted, error) {
	if err := s.o.Storage.DeleteStore(ctx, team, id); err != nil {
		return nil, storeErr(err, "vector store", id)
	}
	return &Deleted{ID: id, Object: "vector_store.deleted", Deleted: true}, nil
}

// ResolveStores maps vector store names or vs_ ids to team's stores, in
// the order of refs (a name several stores share gives them all); a ref
// the team does not own is an error wrapping ErrNotFound.
func (s *Service) ResolveStores(ctx context.Context, team string, refs []string) ([]Store, error) {
	refs = dedupe(refs)
	if len(refs) == 0 {
		return nil, nil
	}
	found, err := s.o.Storage.FindStores(ctx, team, refs)
	if err != nil {
		return nil, err
	}
	var out []Store
	seen := map[string]bool{}
	for _, r := range refs {
		n := 0
		for i := range found {
			if found[i].ID == r || found[i].Name == r {
				n++
				if !seen[found[i].ID] {
					seen[found[i].ID] = true
					out = append(out, found[i])
				}
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("vector store %q: %w", router.Clip(r), ErrNotFound)
		}
	}
	return out, nil
}

func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
