package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/bindings/network"
	"github.com/containers/podman/v5/pkg/bindings/system"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/containers/podman/v5/pkg/errorhandling"
	"github.com/containers/podman/v5/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	nettypes "go.podman.io/common/libnetwork/types"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/storage"

	"github.com/lockstep/lockstep/engine"
	lsmanifest "github.com/lockstep/lockstep/manifest"
	lsspec "github.com/lockstep/lockstep/spec"
)

// Client is a engine.Podman backed by the podman service at one URL. It connects on first use and
// again after a failed attempt, so a daemon started before podman (or across a podman restart) recovers
// without a restart of its own. Connected once, the bindings' HTTP client redials by itself.
type Client struct {
	url string

	// NetworkSeen, when set before use, is told what EnsureNetwork finds or makes: the network's
	// name and whether it resolves names (hostcheck.Checker.SawNetwork).
	NetworkSeen func(name string, dns bool)

	mu   sync.Mutex
	conn context.Context // carries the bindings connection
}

var _ engine.Podman = (*Client)(nil)

// New returns a client for the podman service at url (e.g. unix:///run/podman/podman.sock). It does
// not connect yet.
func New(url string) *Client { return &Client{url: url} }

// Connect establishes the connection now (one ping of the service).
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.ctx(ctx)
	return err
}

// ctx returns a context that carries the bindings connection and ctx's deadline and cancellation.
func (c *Client) ctx(ctx context.Context) (context.Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		conn, err := bindings.NewConnection(context.WithoutCancel(ctx), c.url)
		if err != nil {
			return nil, classify("connecting to podman at "+c.url, err)
		}
		c.conn = conn
	}
	return merged{Context: ctx, values: c.conn}, nil
}

// merged is ctx for cancellation and deadline, with the connection's values.
type merged struct {
	context.Context
	values context.Context
}

func (m merged) Value(key any) any {
	if v := m.values.Value(key); v != nil {
		return v
	}
	return m.Context.Value(key)
}

// classify turns a bindings error into a *engine.APIError that wraps a classified error. The
// response code decides, never the message.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var em *errorhandling.ErrorModel
	if errors.As(err, &em) {
		e := &engine.APIError{Op: op, Status: em.ResponseCode, Message: em.Message, Err: err}
		switch {
		case em.ResponseCode == 404:
			e.Err = engine.ErrNotFound
		case nameInUse(em):
			e.Err = engine.ErrNameInUse
		case em.ResponseCode == 409:
			e.Err = engine.ErrConflict
		}
		return e
	}
	var pc *errorhandling.PodConflictErrorModel
	if errors.As(err, &pc) {
		return &engine.APIError{Op: op, Status: 409, Message: pc.Error(), Err: engine.ErrConflict}
	}
	if isUnreachable(err) {
		return &engine.APIError{Op: op, Err: fmt.Errorf("%w: %v", engine.ErrUnavailable, rootCause(err))}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// nameInUse tells a create refused for its name. libpod answers such a create with 500 (the compat API
// with 409), so the status alone cannot tell it from other failures: the cause podman sends (its root
// error, a sentinel of containers/storage or libpod, not the message around it) does.
func nameInUse(em *errorhandling.ErrorModel) bool {
	if em.ResponseCode != 500 && em.ResponseCode != 409 {
		return false
	}
	return em.Because == storage.ErrDuplicateName.Error() || em.Because == define.ErrCtrExists.Error()
}

func isUnreachable(err error) bool {
	var ce bindings.ConnectError
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ce) || errors.As(err, &oe) || errors.As(err, &ue) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func rootCause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe
	}
	return err
}

// List returns every container in one request.
func (c *Client) List(ctx context.Context) ([]engine.Container, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return nil, err
	}
	all := true
	list, err := containers.List(cctx, &containers.ListOptions{All: &all})
	if err != nil {
		return nil, classify("listing containers", err)
	}
	out := make([]engine.Container, 0, len(list))
	for _, l := range list {
		name := ""
		if len(l.Names) > 0 {
			name = l.Names[0]
		}
		out = append(out, engine.Container{ID: l.ID, Name: name, Image: l.Image, State: l.State, Labels: l.Labels})
	}
	return out, nil
}

// ListStorage returns the containers that are in podman's storage only (podman ps --external: a
// create podman did not finish, or another tool's working container such as buildah's), in one
// request. Their State is "storage"; they carry no labels; Image is the image's ID (its name in the
// listing is any one of the image's names).
func (c *Client) ListStorage(ctx context.Context) ([]engine.Container, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return nil, err
	}
	all, external := true, true
	list, err := containers.List(cctx, &containers.ListOptions{All: &all, External: &external})
	if err != nil {
		return nil, classify("listing storage containers", err)
	}
	var out []engine.Container
	for _, l := range list {
		if l.State != "storage" {
			continue
		}
		name := ""
		if len(l.Names) > 0 {
			name = l.Names[0]
		}
		out = append(out, engine.Container{ID: l.ID, Name: name, Image: l.ImageID, State: l.State})
	}
	return out, nil
}

// ImageID returns the ID of the local image ref.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return "", err
	}
	img, err := images.GetImage(cctx, ref, nil)
	if err != nil {
		return "", classify("inspecting image "+ref, err)
	}
	return img.ID, nil
}

// Inspect returns what adoption compares.
func (c *Client) Inspect(ctx context.Context, nameOrID string) (*engine.Inspected, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return nil, err
	}
	d, err := containers.Inspect(cctx, nameOrID, nil)
	if err != nil {
		return nil, classify("inspecting container "+nameOrID, err)
	}
	in := &engine.Inspected{ID: d.ID, Name: d.Name, Image: d.ImageName}
	if d.Config != nil {
		in.Command = d.Config.Cmd
		in.Labels = d.Config.Labels
	}
	if d.HostConfig != nil {
		for key, binds := range d.HostConfig.PortBindings {
			port, proto, _ := strings.Cut(key, "/")
			cp, _ := strconv.Atoi(port)
			for _, b := range binds {
				hp, _ := strconv.Atoi(b.HostPort)
				if hp == 0 {
					continue
				}
				ip := b.HostIP
				if ip == "0.0.0.0" {
					ip = ""
				}
				in.Ports = append(in.Ports, lsmanifest.Port{HostIP: ip, HostPort: uint16(hp), ContainerPort: uint16(cp), Protocol: proto})
			}
		}
	}
	for _, m := range d.Mounts {
		if m.Type == "bind" {
			in.Binds = append(in.Binds, m.Source+":"+m.Destination)
		}
	}
	return in, nil
}

// ImageExists tells whether the image is in local storage.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return false, err
	}
	ok, err := images.Exists(cctx, ref, nil)
	return ok, classify("looking up image "+ref, err)
}

// Pull pulls ref; tlsVerify false is only passed for allow-listed registries. The service's progress
// lines ("Copying blob ...") go to progress.
func (c *Client) Pull(ctx context.Context, ref string, tlsVerify bool, progress io.Writer) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	if progress == nil {
		progress = io.Discard
	}
	quiet, skip := false, !tlsVerify
	_, err = images.Pull(cctx, ref, &images.PullOptions{Quiet: &quiet, SkipTLSVerify: &skip, ProgressWriter: &progress})
	return classify("pulling "+ref, err)
}

// Build builds an image from a local context (sent to the service as a tarball), removing buildah's
// intermediate containers. Its output goes to b.Output.
func (c *Client) Build(ctx context.Context, b engine.BuildRequest) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	out := b.Output
	if out == nil {
		out = io.Discard
	}
	opts := types.BuildOptions{}
	opts.ContextDirectory = b.ContextDir
	opts.Output = b.Tag
	opts.RemoveIntermediateCtrs = true
	opts.Out = out
	opts.Err = out
	opts.ReportWriter = out
	_, err = images.Build(cctx, []string{b.Containerfile}, opts)
	return classify("building "+b.Tag, err)
}

// RemoveImage removes image ref without force: an image a container uses is kept (ErrConflict).
// The batch endpoint answers 200 with an exit code per libpod's image removal: 1 for an unknown
// image, 2 for one in use.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	force := false
	rep, errs := images.Remove(cctx, []string{ref}, &images.RemoveOptions{Force: &force})
	op := "removing image " + ref
	if rep == nil && len(errs) > 0 {
		return classify(op, errs[0])
	}
	if len(errs) == 0 && (rep == nil || rep.ExitCode == 0) {
		return nil
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	e := &engine.APIError{Op: op, Status: 200, Message: strings.Join(msgs, "; "), Err: errors.New("image removal failed")}
	if rep != nil {
		switch rep.ExitCode {
		case 1:
			e.Err = engine.ErrNotFound
		case 2:
			e.Err = engine.ErrConflict
		}
	}
	return e
}

// Create creates the container without starting it.
func (c *Client) Create(ctx context.Context, r lsspec.CreateRequest) (string, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return "", err
	}
	resp, err := containers.CreateWithSpec(cctx, toSpec(r), nil)
	if err != nil {
		return "", classify("creating container "+r.Name, err)
	}
	return resp.ID, nil
}

func toSpec(r lsspec.CreateRequest) *specgen.SpecGenerator {
	s := specgen.NewSpecGenerator(r.Image, false)
	s.Name = r.Name
	s.Command = r.Command
	s.Entrypoint = r.Entrypoint
	s.Env = r.Env
	s.Labels = r.Labels
	s.User = r.User
	s.CapAdd = r.CapAdd
	s.CapDrop = r.CapDrop
	ro := r.ReadOnly
	s.ReadOnlyFilesystem = &ro
	if r.Restart != "no" {
		s.RestartPolicy = r.Restart
	}
	st := uint((r.StopTimeout + time.Second - 1) / time.Second) // podman counts whole seconds
	s.StopTimeout = &st
	switch r.Network {
	case "bridge", "":
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
	case "host":
		s.NetNS = specgen.Namespace{NSMode: specgen.Host}
	case "none":
		s.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	default:
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
		s.Networks = map[string]nettypes.PerNetworkOptions{r.Network: {Aliases: r.Aliases}}
		for _, n := range r.Networks {
			s.Networks[n] = nettypes.PerNetworkOptions{}
		}
	}
	for _, p := range r.Ports {
		s.PortMappings = append(s.PortMappings, nettypes.PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
	}
	for _, v := range r.Volumes {
		opts := []string{"rbind"}
		opts = append(opts, v.Options...)
		s.Mounts = append(s.Mounts, spec.Mount{Type: "bind", Source: v.Source, Destination: v.Target, Options: opts})
	}
	if r.Health != nil {
		// podman takes zero literally (a 0 s timeout fails every check): fill the defaults.
		h := lsspec.Effective(r.Health)
		s.HealthConfig = &manifest.Schema2HealthConfig{
			Test:        append([]string{"CMD"}, h.Command...),
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			Retries:     h.Retries,
			StartPeriod: h.StartPeriod,
		}
	}
	return s
}

// EnsureNetwork creates the named bridge network, with DNS, unless it exists. What it finds or makes
// goes to NetworkSeen, if set: whether the network resolves names (dns_enabled).
func (c *Client) EnsureNetwork(ctx context.Context, name, app string) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	// One request, as network.Exists would be, that also says whether the network has DNS.
	if n, err := network.Inspect(cctx, name, nil); err == nil {
		c.sawNetwork(name, n.DNSEnabled)
		return nil
	} else if err = classify("checking network "+name, err); !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	made, err := network.Create(cctx, &nettypes.Network{Name: name, Driver: "bridge", DNSEnabled: true,
		Labels: map[string]string{lsspec.LabelApp: app}})
	if err != nil {
		if ok, e2 := network.Exists(cctx, name, nil); e2 == nil && ok {
			return nil // created meanwhile
		}
		return classify("creating network "+name, err)
	}
	// CNI without the dnsname plugin makes the network without DNS, whatever was asked.
	c.sawNetwork(name, made.DNSEnabled)
	return nil
}

func (c *Client) sawNetwork(name string, dns bool) {
	if c.NetworkSeen != nil {
		c.NetworkSeen(name, dns)
	}
}

// HostInfo is GET /info, reduced to what hostcheck needs (one request).
func (c *Client) HostInfo(ctx context.Context) (engine.HostInfo, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return engine.HostInfo{}, err
	}
	in, err := system.Info(cctx, nil)
	if err != nil {
		return engine.HostInfo{}, classify("asking for podman's info", err)
	}
	out := engine.HostInfo{Backend: in.Host.NetworkBackend, Rootless: in.Host.Security.Rootless}
	if in.Version.Version != "" {
		out.Version = in.Version.Version
	}
	// podman >= 4.4 describes the backend and its DNS helper; 4.3 sends no networkBackendInfo.
	if bi := in.Host.NetworkBackendInfo; bi.Backend != "" {
		out.BackendInfo, out.DNSPath = true, bi.DNS.Path
	}
	for _, m := range in.Host.IDMappings.UIDMap {
		out.UIDs += int64(m.Size)
	}
	return out, nil
}

// NetworkDNS is GET /networks/json (one request): each network's name and dns_enabled.
func (c *Client) NetworkDNS(ctx context.Context) (map[string]bool, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := network.List(cctx, nil)
	if err != nil {
		return nil, classify("listing networks", err)
	}
	out := make(map[string]bool, len(nets))
	for _, n := range nets {
		out[n.Name] = n.DNSEnabled
	}
	return out, nil
}

// Start starts a container; starting a running one is not an error.
func (c *Client) Start(ctx context.Context, id string) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	return classify("starting container "+id, containers.Start(cctx, id, nil))
}

// Stop stops a container, killing it after timeout.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	opts := &containers.StopOptions{}
	if timeout > 0 {
		t := uint((timeout + time.Second - 1) / time.Second)
		opts.Timeout = &t
	}
	return classify("stopping container "+id, containers.Stop(cctx, id, opts))
}

// Remove removes a container and never its volumes.
func (c *Client) Remove(ctx context.Context, id string) error {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return err
	}
	force, vols := true, false
	_, err = containers.Remove(cctx, id, &containers.RemoveOptions{Force: &force, Volumes: &vols})
	return classify("removing container "+id, err)
}

// RunHealthCheck runs the container's health check now and returns podman's verdict: starting,
// healthy or unhealthy, with the number of consecutive failures.
func (c *Client) RunHealthCheck(ctx context.Context, nameOrID string) (string, int, error) {
	cctx, err := c.ctx(ctx)
	if err != nil {
		return "", 0, err
	}
	res, err := containers.RunHealthCheck(cctx, nameOrID, nil)
	if err != nil {
		return "", 0, classify("health check of "+nameOrID, err)
	}
	return res.Status, res.FailingStreak, nil
}
