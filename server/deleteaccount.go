package server

import (
	"context"
	"net/http"

	"natter"
)

// deletedAccountError refuses a sign-in under a deleted account's name, with a password or as a
// guest: nobody may appear under it again.
func deletedAccountError(name string) error {
	return natter.Errorf(natter.EFORBIDDEN, "the account %s was deleted, and its name is not used again", name)
}

// handleDeleteAccount deletes the signed-in account, after its password: every session ends with
// its connections, on every node, it leaves its private rooms, and its name is never used again.
// With "erase_messages" the words of everything it wrote are erased first, in every room, as its
// deletions would erase them. 204. Guests have no account (403); a wrong password is 403 and
// counts as a failed sign-in.
func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password      string `json:"password"`
		EraseMessages bool   `json:"erase_messages"`
	}
	if err := decodeJSON(w, r, maxJSONRequestBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	a := authFrom(r.Context())
	if a.user.Guest {
		s.writeError(w, r, natter.Errorf(natter.EFORBIDDEN, "%s is a guest, with no account to delete: signing out is enough", a.user.Name))
		return
	}
	if _, err := s.confirmPassword(r.Context(), a.user.Name, req.Password, "the password is not right: give the account's password to delete it", nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Once begun, the deletion is finished even if the client goes away.
	ctx := context.WithoutCancel(r.Context())
	name := a.user.Name
	// The other sessions end first, so that nothing more is sent from them; if erasing fails,
	// the account is still there to try again.
	if _, err := s.revokeUserSessions(ctx, name, a.tokenHash); err != nil {
		s.writeError(w, r, err)
		return
	}
	var erased int64
	if req.EraseMessages {
		var err error
		if erased, err = s.store.EraseAuthor(ctx, name); err != nil {
			s.logger.Error("deleting an account: erasing its messages failed; the account stays", "user", name, "erased", erased, "err", err)
			s.writeError(w, r, err)
			return
		}
	}
	rooms, err := s.store.DeleteUser(ctx, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.revokeUserSessions(ctx, name, ""); err != nil {
		s.logger.Warn("deleting an account: ending its last sessions", "user", name, "err", err)
	}
	if req.EraseMessages {
		// Again: whatever a session sent while the first pass ran (no session is left now).
		n, err := s.store.EraseAuthor(ctx, name)
		erased += n
		if err != nil {
			s.logger.Error("deleting an account: erasing its last messages failed", "user", name, "err", err)
		}
	}
	s.logger.Info("account deleted", "user", name, "erased_messages", req.EraseMessages, "erased", erased, "rooms_left", len(rooms))
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}
