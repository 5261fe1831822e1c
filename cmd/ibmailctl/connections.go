package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var connectionsCmd = &command{
	name:  "connections",
	args:  "[list | get ID | add ID | update ID | test ID | rotate-secret ID | delete ID]",
	short: "manage Infobip connections: API key, base URL, Application and Entity ID (admin)",
	summary: `A connection is an Infobip account ibmail sends through and hears from, as the
integration's "Add connection" dialog has it: API Key, Base URL endpoint, and
optionally Application ID and Entity ID. list (the default) shows them without
their keys (the key's hint only); get ID shows one. add ID stores one and
prints its webhook URLs and webhook secret, shown this once: give them to
Infobip. The API key is read from --api-key-file (- for standard input) or the
environment variable INFOBIP_API_KEY, never from the command line, where it
would stay in the shell's history and the process list. update ID changes the
fields whose flags are given. test ID asks Infobip whether the key works and
prints the server's explanation: a bad key, the missing scopes by name, an
unreachable base URL, or the sending domains. rotate-secret ID makes a new
webhook secret (the old one keeps working for a while). delete ID deletes a
connection that no sender uses. All need an admin token.`,
	example: `INFOBIP_API_KEY=... ibmailctl connections add main --base-url https://xyz.api.infobip.com
ibmailctl connections test main
ibmailctl connections update main --entity-id shop-eu
ibmailctl connections`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		o := &connectionOptions{set: map[string]bool{}}
		fs.StringVar(&o.keyFile, "api-key-file", "", "file holding the API key (- for standard input); default: $INFOBIP_API_KEY (add, update)")
		fs.StringVar(&o.baseURL, "base-url", "", "the account's Base URL endpoint, such as https://xyz.api.infobip.com (add, update)")
		fs.StringVar(&o.applicationID, "application-id", "", "Infobip Application ID, optional (add, update)")
		fs.StringVar(&o.entityID, "entity-id", "", "Infobip Entity ID, optional (add, update)")
		fs.StringVar(&o.name, "name", "", "display name (add, update)")
		fs.IntVar(&o.rateLimit, "rate-limit", 0, "requests per second to Infobip; 0 for the default (add, update)")
		return func(ctx context.Context, e *env, args []string) error {
			fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
			return runConnections(ctx, e, o, args)
		}
	},
}

type connectionOptions struct {
	keyFile, baseURL, applicationID, entityID, name string
	rateLimit                                       int
	set                                             map[string]bool
}

func runConnections(ctx context.Context, e *env, o *connectionOptions, args []string) error {
	action, id, err := actionAndID("connections", args, "list", "get ID", "add ID", "update ID", "test ID", "rotate-secret ID", "delete ID")
	if err != nil {
		return err
	}
	client := ibmailv1.NewConnectionServiceClient(e.conn)
	switch action {
	case "list":
		all, err := allPages(func(token string) ([]*ibmailv1.Connection, string, error) {
			resp, err := client.ListConnections(ctx, &ibmailv1.ListConnectionsRequest{PageSize: 100, PageToken: token})
			return resp.GetConnections(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSONList(e.stdout, "connections", all)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "ID\tNAME\tBASE URL\tAPPLICATION ID\tENTITY ID\tAPI KEY")
		for _, c := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.GetId(), orDash(c.GetDisplayName()), c.GetBaseUrl(),
				orDash(c.GetApplicationId()), orDash(c.GetEntityId()), orDash(c.GetApiKeyHint()))
		}
		return tw.Flush()
	case "get":
		resp, err := client.GetConnection(ctx, &ibmailv1.GetConnectionRequest{ConnectionId: id})
		if err != nil {
			return err
		}
		return writeConnection(e, resp.GetConnection(), "")
	case "add":
		if o.baseURL == "" {
			return usagef("connections add: --base-url is required: the account's Base URL endpoint, such as https://xyz.api.infobip.com")
		}
		key, err := o.apiKey(e.stdin, true)
		if err != nil {
			return err
		}
		resp, err := client.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
			Id: id, DisplayName: o.name, ApiKey: key, BaseUrl: o.baseURL, ApplicationId: o.applicationID,
			EntityId: o.entityID, RateLimit: int32(o.rateLimit),
		}})
		if err != nil {
			return err
		}
		return writeConnection(e, resp.GetConnection(), resp.GetWebhookSecret())
	case "update":
		c := &ibmailv1.Connection{DisplayName: o.name, BaseUrl: o.baseURL, ApplicationId: o.applicationID, EntityId: o.entityID, RateLimit: int32(o.rateLimit)}
		var paths []string
		for flagName, path := range map[string]string{"name": "display_name", "base-url": "base_url", "application-id": "application_id", "entity-id": "entity_id", "rate-limit": "rate_limit"} {
			if o.set[flagName] {
				paths = append(paths, path)
			}
		}
		if o.set["api-key-file"] || os.Getenv("INFOBIP_API_KEY") != "" {
			if c.ApiKey, err = o.apiKey(e.stdin, false); err != nil {
				return err
			}
			paths = append(paths, "api_key")
		}
		if len(paths) == 0 {
			return usagef("connections update: give at least one of --api-key-file, --base-url, --application-id, --entity-id, --name, --rate-limit")
		}
		resp, err := client.UpdateConnection(ctx, &ibmailv1.UpdateConnectionRequest{ConnectionId: id, Connection: c, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		if err != nil {
			return err
		}
		return writeConnection(e, resp.GetConnection(), "")
	case "test":
		resp, err := client.TestConnection(ctx, &ibmailv1.TestConnectionRequest{ConnectionId: id})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSON(e.stdout, resp)
		}
		verdict := "FAILED"
		if resp.GetOk() {
			verdict = "OK"
		}
		fmt.Fprintf(e.stdout, "%s (%s): %s\n", verdict, strings.TrimPrefix(resp.GetResult().String(), "CONNECTION_TEST_RESULT_"), resp.GetMessage())
		if len(resp.GetRequiredScopes()) > 0 {
			fmt.Fprintf(e.stdout, "scopes the key needs: %s\n", strings.Join(resp.GetRequiredScopes(), ", "))
		}
		for _, d := range resp.GetDomains() {
			state := "active"
			switch {
			case d.GetBlocked():
				state = "BLOCKED"
			case !d.GetActive():
				state = "inactive"
			}
			fmt.Fprintf(e.stdout, "domain %s: %s\n", d.GetName(), state)
		}
		if !resp.GetOk() {
			return errTestFailed
		}
		return nil
	case "rotate-secret":
		resp, err := client.RotateWebhookSecret(ctx, &ibmailv1.RotateWebhookSecretRequest{ConnectionId: id})
		if err != nil {
			return err
		}
		return writeConnection(e, resp.GetConnection(), resp.GetWebhookSecret())
	default: // delete
		if _, err := client.DeleteConnection(ctx, &ibmailv1.DeleteConnectionRequest{ConnectionId: id}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted connection %s\n", id)
		return nil
	}
}

// errTestFailed makes a failed connection test exit 1, as a refused call
// does, after its explanation was printed.
var errTestFailed = errors.New("the connection test failed (see above)")

// apiKey reads the key from --api-key-file or INFOBIP_API_KEY.
func (o *connectionOptions) apiKey(stdin io.Reader, required bool) (string, error) {
	var raw []byte
	switch {
	case o.keyFile == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, 4096))
		if err != nil {
			return "", usagef("reading the API key from standard input: %v", err)
		}
		raw = b
	case o.keyFile != "":
		b, err := os.ReadFile(o.keyFile)
		if err != nil {
			return "", usagef("%v", err)
		}
		raw = b
	default:
		raw = []byte(os.Getenv("INFOBIP_API_KEY"))
	}
	key := strings.TrimSpace(string(raw))
	if key == "" && required {
		return "", usagef("no API key: give --api-key-file FILE (- for standard input) or set INFOBIP_API_KEY")
	}
	return key, nil
}

// writeConnection shows one connection, and a new webhook secret once.
func writeConnection(e *env, c *ibmailv1.Connection, secret string) error {
	if e.g.output == "json" {
		v := map[string]any{"connection": rawJSON(c)}
		if secret != "" {
			v["webhookSecret"] = secret
		}
		return writeValue(e.stdout, v)
	}
	tw := table(e.stdout)
	for _, row := range [][2]string{
		{"id", c.GetId()}, {"name", orDash(c.GetDisplayName())}, {"base URL", c.GetBaseUrl()},
		{"application ID", orDash(c.GetApplicationId())}, {"entity ID", orDash(c.GetEntityId())},
		{"API key", orDash(c.GetApiKeyHint())}, {"webhook URL", orDash(c.GetWebhookUrl())},
		{"created", formatTime(c.GetCreateTime())}, {"updated", orDash(formatTime(c.GetUpdateTime()))},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if secret != "" {
		fmt.Fprintf(tw, "webhook secret:\t%s\t(shown this once: give it to Infobip as the webhook's password)\n", secret)
	}
	return tw.Flush()
}

// actionAndID splits ACTION [ARG] by the usage of each action, such as
// "list" (no argument) or "get ID" (one); the first action is the default.
func actionAndID(cmd string, args []string, actions ...string) (string, string, error) {
	if len(args) == 0 {
		return actions[0], "", nil
	}
	action := args[0]
	names := make([]string, len(actions))
	for i, usage := range actions {
		a, _, takesArg := strings.Cut(usage, " ")
		names[i] = a
		if a != action {
			continue
		}
		want := 0
		if takesArg {
			want = 1
		}
		if len(args)-1 != want {
			return "", "", usagef("%s %s takes %d argument(s), got %d", cmd, action, want, len(args)-1)
		}
		if want == 0 {
			return action, "", nil
		}
		if args[1] == "" || (strings.HasPrefix(args[1], "-") && args[1] != "-") {
			return "", "", usagef("%s %s: %q is not a %s", cmd, action, args[1], strings.ToLower(strings.SplitN(actions[i], " ", 2)[1]))
		}
		return action, args[1], nil
	}
	return "", "", usagef("%s: unknown action %q: use %s", cmd, action, strings.Join(names, ", "))
}
