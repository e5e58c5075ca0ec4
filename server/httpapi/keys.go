package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleRotateKey makes a new signing key active; root administrators only.
// The answer names the new kid and every kid still verifying.
func (s *Server) handleRotateKey(c echo.Context) error {
	rot, err := s.app.RotateKey(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, rot)
}
