package vectorstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"llmproxy/router"
)

// purposes are the purpose values OpenAI accepts for an upload.
var purposes = []string{"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}

const maxFilename = 512

func fileObject(f *File) FileObject {
	return FileObject{ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt.Unix(),
		Filename: f.Filename, Purpose: f.Purpose, Status: "processed"}
}

// UploadFile is POST /v1/files: it stores data as team's file. The HTTP
// layer has already capped data at MaxFileBytes.
func (s *Service) UploadFile(ctx context.Context, team, filename, purpose string, data []byte) (*FileObject, error) {
	if purpose == "" {
		return nil, invalid("purpose", "Missing required parameter: 'purpose'.")
	}
	if !slices.Contains(purposes, purpose) {
		return nil, invalid("purpose", fmt.Sprintf("Invalid 'purpose': %q is not one of %s.", router.Clip(purpose), strings.Join(purposes, ", ")))
	}
	if filename == "" || !utf8.ValidString(filename) || len(filename) > maxFilename || strings.ContainsAny(filename, "\x00/\\") {
		return nil, invalid("file", "Invalid 'file': it needs a filename of at most 512 bytes of UTF-8 without slashes.")
	}
	if int64(len(data)) > s.o.MaxFileBytes {
		return nil, ErrTooLarge(s.o.MaxFileBytes)
	}
	f := &File{ID: newID("file-"), Team: team, Filename: filename, Purpose: purpose, Bytes: int64(len(data)), CreatedAt: s.o.Now()}
	if err := s.o.Storage.CreateFile(ctx, f, data); err != nil {
		return nil, fmt.Errorf("vectorstore: store file: %w", err)
	}
	o := fileObject(f)
	return &o, nil
}

// ErrTooLarge is the 413 for an upload over vector_stores.max_file_bytes.
func ErrTooLarge(max int64) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Status: 413, Code: "file_too_large", Param: "file",
		Message: fmt.Sprintf("The file is larger than the %d bytes allowed (vector_stores.max_file_bytes).", max)}
}

// ListFiles is GET /v1/files.
func (s *Service) ListFiles(ctx context.Context, team, purpose string, q ListQuery) (*List[FileObject], error) {
	p, err := q.page(maxFileLimit, maxFileLimit)
	if err != nil {
		return nil, err
	}
	want := p.Limit
	p.Limit++ // one more tells has_more
	fs, err := s.o.Storage.ListFiles(ctx, team, purpose, p)
	if err != nil {
		return nil, err
	}
	return listOf(fs, want, fileObject, func(o *FileObject) string { return o.ID }), nil
}

// GetFile is GET /v1/files/{id}.
func (s *Service) GetFile(ctx context.Context, team, id string) (*FileObject, error) {
	f, err := s.o.Storage.GetFile(ctx, team, id)
	if err != nil {
		return nil, storeErr(err, "file", id)
	}
	o := fileObject(f)
	return &o, nil
}

// FileContent is GET /v1/files/{id}/content: the file's name and bytes.
func (s *Service) FileContent(ctx context.Context, team, id string) (string, []byte, error) {
	f, err := s.o.Storage.GetFile(ctx, team, id)
	if err != nil {
		return "", nil, storeErr(err, "file", id)
	}
	data, err := s.o.Storage.FileContent(ctx, team, id)
	if err != nil {
		return "", nil, storeErr(err, "file", id)
	}
	return f.Filename, data, nil
}

// DeleteFile is DELETE /v1/files/{id}: the file, and its chunks in every
// vector store it was attached to.
func (s *Service) DeleteFile(ctx context.Context, team, id string) (*Deleted, error) {
	if err := s.o.Storage.DeleteFile(ctx, team, id); err != nil {
		return nil, storeErr(err, "file", id)
	}
	return &Deleted{ID: id, Object: "file", Deleted: true}, nil
}
