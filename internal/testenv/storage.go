package testenv

import (
	"fmt"

	"go.podman.io/storage"
)

// CreateStorageOnly makes a container that exists only in this service's storage, named name, from
// image: what podman leaves when it is killed in the middle of a create (the name is reserved in
// containers/storage before the container is recorded in podman's database). podman ps --external
// lists it with state "storage"; inspect does not find it; a create with its name is refused. The
// service's own storage library is used, on its graph root (file locks make that safe while the
// service runs). It returns the container's id.
func (p *Podman) CreateStorageOnly(name, image string) (string, error) {
	s, err := storage.GetStore(storage.StoreOptions{GraphRoot: p.Dir + "/root", RunRoot: p.Dir + "/run", GraphDriverName: "overlay"})
	if err != nil {
		return "", fmt.Errorf("opening the storage of %s: %w", p.Dir, err)
	}
	defer s.Shutdown(false)
	img, err := s.Image(image)
	if err != nil {
		return "", fmt.Errorf("image %s in storage: %w", image, err)
	}
	c, err := s.CreateContainer("", []string{name}, img.ID, "", "", nil)
	if err != nil {
		return "", fmt.Errorf("creating storage-only container %s: %w", name, err)
	}
	return c.ID, nil
}
