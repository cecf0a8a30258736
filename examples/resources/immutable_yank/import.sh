# A yank is imported by name@version.
terraform import immutable_yank.web_1_4_2 web@1.4.2
