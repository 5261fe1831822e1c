package server

import (
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc/metadata"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// SuppressionExportPath serves the suppression list as a file, for a
// browser or curl: GET with format=csv (the default) or format=json, and
// includeExpired=true to include expired suppressions.
const SuppressionExportPath = "/v1/suppressions:export"

// serveSuppressionExport is the REST form of ExportSuppressions, a server
// stream the gateway would wrap in JSON lines. It calls the method through
// the in-process connection with the caller's token, so that the token
// check, role, rate and logging are the method's own.
func (s *Server) serveSuppressionExport(w http.ResponseWriter, r *http.Request) {
	req, contentType, name, err := exportRequest(r)
	if err != nil {
		// The caller learns what is wrong with its parameters only once its
		// token may call the method, as on every other route.
		ctx := r.Context()
		if auth := r.Header.Values("Authorization"); len(auth) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.MD{"authorization": auth})
		}
		if authErr := s.gateway.tokens.authenticate(ctx, ibmailv1.SuppressionService_ExportSuppressions_FullMethodName); authErr != nil {
			err = authErr
		}
		s.exportError(w, r, err)
		return
	}
	ctx := r.Context()
	if auth := r.Header.Get("Authorization"); auth != "" {
		ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs("authorization", auth))
	}
	stream, err := ibmailv1.NewSuppressionServiceClient(s.conn).ExportSuppressions(ctx, req)
	if err != nil {
		s.exportError(w, r, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		s.exportError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	for msg := first; ; {
		if _, err := w.Write(msg.GetContent()); err != nil {
			return
		}
		if msg, err = stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				// The status is sent already: cut the file short, so a
				// client sees a broken transfer rather than a short list.
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

// exportRequest reads the export route's query parameters.
func exportRequest(r *http.Request) (*ibmailv1.ExportSuppressionsRequest, string, string, error) {
	req := &ibmailv1.ExportSuppressionsRequest{Format: ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_CSV}
	contentType, name := "text/csv; charset=utf-8", "suppressions.csv"
	for key, values := range r.URL.Query() {
		if len(values) != 1 {
			return nil, "", "", invalidField(safeText(key, 64), "give it once")
		}
		switch v := values[0]; key {
		case "format":
			switch v {
			case "csv":
			case "json":
				req.Format, contentType, name = ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_JSON, "application/json", "suppressions.json"
			default:
				return nil, "", "", invalidField("format", "give csv or json")
			}
		case "includeExpired":
			switch v {
			case "true":
				req.IncludeExpired = true
			case "false", "":
			default:
				return nil, "", "", invalidField("includeExpired", "give true or false")
			}
		default:
			return nil, "", "", invalidField(safeText(key, 64), "is not a parameter of this route: use format and includeExpired")
		}
	}
	return req, contentType, name, nil
}

func (s *Server) exportError(w http.ResponseWriter, r *http.Request, err error) {
	writeHTTPError(s.gateway.mux, w, r, safeStatus(toStatus(err)))
}
